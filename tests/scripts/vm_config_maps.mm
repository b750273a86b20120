vm config tags
vm config tags color red
vm config tags shape square
vm config tags
# 2.4 quirk: a key without a value prints nothing
vm config tags color
vm config tags color blue
vm config tags
clear vm config tag color
vm config tags
clear vm config tag all
vm config tags
vm config volume /data /srv/data
vm config volume /logs /srv/logs
vm config volume
vm config volume /data
vm config volume /data /srv/other
vm config volume
clear vm config volume
vm config volume
