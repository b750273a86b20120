vlans
vlans add a 10
vlans add b 11
vlans
vlans add a 12
vlans add c 10
vlans add d x
vm config net X
vm config net
vlans
vlans range
vlans range 200 300
vlans range
vlans range 300 200
vlans range a b
vm config net Y
vm config net
namespace other
vlans range 400 410
vm config net Z
vm config net
vlans
vlans range
namespace minimega
vlans
# Another namespace's alias keeps its prefix
vm config net other//Z
vm config net
clear vlans a
vlans
clear vlans
vlans
namespace other vlans
