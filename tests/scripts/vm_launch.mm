vm launch kvm foo
.columns name,state,type vm info
vm launch kvm foo
vm launch kvm bar[1-3],baz
.columns name,state vm info
vm launch kvm 2
.columns name .filter name~vm- vm info
vm launch kvm 1
.columns name .filter name~vm- vm info
vm launch kvm all
vm launch kvm foo2,all
vm launch kvm 0
vm launch kvm x,x
vm launch kvm a,[0]
vm launch kvm 1a[1-2
vm launch kvm kn[01-03]
.columns name .filter name~kn vm info
vm config uuid 00000000-0000-0000-0000-000000000001
vm launch kvm u1,u2
vm launch kvm u1
vm launch kvm u2
.columns name,uuid .filter name=u1 vm info
.columns name .filter state!=error vm info
# Launch failures are not returned; the VM waits in ERROR with the reason
.columns name,tags .filter name=foo vm info
