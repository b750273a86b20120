vlans add b 20
vlans add a 3
.headers false vlans
.headers false
vlans
.columns vlan vlans
.headers true
vlans
