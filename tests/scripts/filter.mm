vlans add alpha 101
vlans add beta 102
vlans add gamma 203
vlans add Delta 204
.filter alias=beta vlans
.filter alias!=beta vlans
.filter alias~a vlans
.filter alias!~a vlans
.filter alias!~ph vlans
# Matching is case-insensitive, for values and column names
.filter ALIAS=DELTA vlans
.filter alias=delta vlans
# Column names may be unique prefixes
.filter al=gamma vlans
.filter v~10 vlans
# Filters stack
.filter vlan~20 .filter alias~e vlans
# A filter outside .columns cannot see projected-away columns
.columns alias .filter vlan=101 vlans
.filter vlan=101 .columns alias vlans
# Errors
.filter nope vlans
.filter zz=1 vlans
vm launch kvm foo
.filter i=0 vm info
# List- and object-like values always match by substring
.columns name,state .filter tags=kvm vm info
.columns name .filter state=error vm info
.columns name .filter state=erro vm info
