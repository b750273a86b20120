# Relative paths of path fields are joined to the files directory
vm config cdrom foo.iso
vm config cdrom
vm config kernel ./k/vmlinuz
vm config kernel
vm config initrd k//initrd
vm config initrd
vm config disk a.img sub/b.img /abs/c.img
vm config disk
vm config qemu kvm
vm config qemu
vm config filesystem rootfs
vm config filesystem
vm config migrate m.state
vm config migrate
vm config volume /data host/data
vm config volume
# preinit is not a path field
vm config preinit relative/preinit
vm config preinit
