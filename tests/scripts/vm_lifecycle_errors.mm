vm launch kvm a
vm launch kvm b
vm stop a
vm kill a
vm stop all
vm kill all
vm stop nosuch
vm kill nosuch
vm start nosuch
vm stop a,nosuch
vm start all
vm start a
vm stop [
.columns name,state vm info
vm flush
vm info
vm flush
