# 2.4 quirk: clear vm tag <vm> <tag> clears every tag of the VM
vm launch kvm t1
vm tag t1 a 1
vm tag t1 b 2
clear vm tag t1 a
vm tag all
