# 2.4 fails to create a container without a filesystem: nothing is listed
vm launch container ct
.columns name vm info
