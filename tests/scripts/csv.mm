vlans add plain 10
vlans add "with,comma" 11
vlans add 'with"quote' 12
vlans add " leading space" 13
.csv true vlans
.csv true .headers false vlans
.csv true echo not a table
.csv true
.csv
.columns vlan,alias vlans
.annotate true .columns vlan vlans
.csv false
.columns vlan vlans
