echo first
vlans add r 5
vm config memory bad
echo after error
write @FILES@/replay.mm
clear vlans
clear history
read @FILES@/replay.mm
vlans
history
read @FILES@/replay.mm check
file delete replay.mm
