.annotate true echo hello
.annotate true vlans
vlans add a 10
.annotate true vlans
.annotate true .columns vlan vlans
.annotate true .filter host=testhost vlans
.annotate true .filter host=elsewhere vlans
vlans
.annotate true
echo annotated
.annotate
.annotate false
echo plain
