vm config restore
vm config memory 1024
vm config save small
vm config memory 8192
vm config save big
vm config restore
vm config restore small
vm config memory
vm config restore big
vm config memory
vm config restore nope
clear vm config
vm config memory
vm config restore small
vm config memory
# Saved configs belong to their namespace
namespace other vm config restore
namespace other vm config memory
# Saving again replaces the copy
vm config memory 256
vm config save small
vm config memory 512
vm config restore small
vm config memory
