vlans add a 10
# Unique prefixes of literals and choices match
vl
vla ad b 11
vm conf mem
vm config mem 1024
vm config memory
ns queuei t
ns queueing
.col alias .filt vlan=11 vlans
# Ambiguous prefixes are invalid commands
vm st foo
vm config m
# No pattern matches
vm foo
foo
vm info extra
vlans add onlyalias
  vm   bogus  
ns queueing false
