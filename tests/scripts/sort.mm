vlans add x9 9
vlans add x100 100
vlans add x20 20
vlans add y 5
# Rows sort cell by cell; cells that are both integers compare as numbers
.columns vlan,alias vlans
.columns alias,vlan vlans
# Without sorting, rows come as the command produced them (VMs by id)
vm launch kvm zeta
vm launch kvm alpha
.columns name vm info
.sort false .columns name vm info
