vlans add alpha 101
vlans add beta 102
.columns vlan vlans
.columns vlan,alias vlans
.columns v,a vlans
.columns alias,alias vlans
.columns nope vlans
vm launch kvm foo
.columns i vm info
.columns n,i vm info
.columns name,state,type,memory,vcpus vm info
.columns na,st,ty,mem,vc vm info
# An exact name wins over a longer column it prefixes (init, initrd)
.columns name,disk,filesystem,init,fifo,tags vm info
.columns name,vlan,bridge,tap,mac,ip,ip6,qos vm info
