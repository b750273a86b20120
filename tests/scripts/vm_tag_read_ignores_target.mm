# 2.4 quirk: reading tags ignores the target and lists every VM (fixed in 2.5)
vm launch kvm t1
vm launch kvm t2
vm tag t1 color red
vm tag t2 color blue
vm tag t1 color
