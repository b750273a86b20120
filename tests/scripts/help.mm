help vm config memory
help vm conf mem
help vm info
help vlans add
help echo
help clear vlans
