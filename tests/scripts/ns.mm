ns hosts
ns add-hosts localhost
ns hosts
ns add-hosts nosuchhost
ns del-hosts localhost
ns hosts
vm launch kvm nohost
ns add-hosts testhost
ns hosts
# The failed launch left its VM in the queue
vm launch
.columns name,state vm info
ns load
ns load memcommit
ns load
ns load netcommit
ns load
ns load cpucommit
ns load bogus
ns queueing
ns queueing true
ns queueing
ns queue
vm launch kvm q[1-2]
vm launch kvm q2
vm launch container c1
.columns name vm info
ns flush
ns queue
vm launch
vm launch kvm q1
vm launch
.columns name,state vm info
ns queueing false
.columns state,launched,failures,total,hosts ns schedules
ns run echo hi
ns run vm launch kvm x
