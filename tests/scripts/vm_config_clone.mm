vm config memory 1024
vm config net 100,00:11:22:33:44:55
vm config uuid 11111111-2222-3333-4444-555555555555
vm launch kvm src
clear vm config
vm config clone src
vm config memory
vm config net
vm config uuid
vm config clone nosuch
# Launched VMs keep the config they were launched with
vm config memory 64
.columns name,memory,vlan,mac vm info
