# Columns pad to the longest cell plus one, at least five; the last is not padded
vlans add a 1
vlans add a-much-longer-alias-name 2
vlans
.columns vlan,alias vlans
# Inner lines keep trailing spaces; only the end of the text is trimmed
vm config memory 512
vm config vcpus 2
vm config net 100
vm config tags a b
vm config snapshot false
vm config append console=ttyS0
vm config init /bin/sh
vm config hostname box
vm config volume /data /host
vm config
clear vm config
vm config
