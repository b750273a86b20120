vm launch kvm t1
vm launch kvm t2
vm tag t1 color red
vm tag t2 color blue
vm tag t1 shape square
vm tag all
vm tag all color
vm tag t1 all x
vm tag all color green
vm tag all color
.columns name,tags vm info
clear vm tag
vm tag all
# Config tags are copied to VMs at launch
vm config tags role web
vm launch kvm t3
vm tag all role
