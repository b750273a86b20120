vlans blacklist
vlans blacklist 102
vlans blacklist
vm config net A B
vm config net
# A VLAN used by number is never given to an alias
vm config net 104
vm config net C
vm config net
vlans blacklist
vlans blacklist x
# clear vlans all resets the allocator
clear vlans all
vlans
vm config net D
vm config net
