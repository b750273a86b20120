.json true echo hi
.json true echo <b>&amp;</b>
vlans add a 10
.json true vlans
.json true vm config memory foo
.json true
.columns vlan vlans
.json false
.json
