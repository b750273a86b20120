vm config memory 512
vm config vcpus 4
vm config tags a b
vm config net 100
vm config init /bin/sh
clear vm config memory
vm config memory
vm config vcpus
clear vm config networks
vm config net
clear vm config tags
vm config tags
clear vm config init
vm config init
clear vm config
vm config vcpus
clear vm config m
clear vm config nosuchfield
