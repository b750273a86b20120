vm config net
vm config net 100
vm config net
vm config net 100 200
vm config net
vm config net mybridge,300
vm config net
vm config net 10,00:11:22:33:44:55
vm config net
vm config net 10,00:11:22:AA:BB:CC,virtio-net-pci
vm config net
vm config net br0,10,00:11:22:33:44:55
vm config net
vm config net br0,10,00:11:22:33:44:55,e1000
vm config net
vm config net 10,e1000
vm config net
vm config net LAN
vm config net
vlans
vm config net LAN LAN,00:11:22:33:44:66
vm config net
# Any error clears the whole list
vm config net 1,2,3,4,5
vm config net
vm config net br0,10,zz:zz:zz:zz:zz:zz,e1000
vm config net 10,11:22:33:44:55:66,nosuchdriver
vm config net 4096
vm config net 100 -1
vm config net
vm config net 100
clear vm config networks
vm config net
