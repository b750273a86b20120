.alias
.alias lsv=vlans
.alias
vlans add a 10
lsv
.alias dv=.columns vlan vlans
dv
.alias
.unalias lsv
.alias
lsv
.alias noequals
.unalias nosuch
.unalias dv
# 2.4 expands an alias that is a string prefix of the input (reference 1.1)
.alias e=echo x
e 1
echo hi
.unalias e
echo hi
