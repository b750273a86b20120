vm config memory
vm config memory 4096
vm config memory
vm config memory foo
vm config memory -1
vm config memory 99999999999999999999
vm config memory
vm config vcpus 0
vm config vcpus
vm config coschedule
vm config coschedule -5
vm config coschedule
vm config coschedule x
vm config snapshot
vm config snapshot false
vm config snapshot
vm config backchannel f
vm config backchannel
vm config uuid
vm config uuid anything-goes
vm config uuid
vm config cpu
vm config cpu qemu64
vm config cpu
vm config schedule testhost
vm config schedule
vm config serial-ports 2
vm config virtio-ports 3
vm config fifos 4
vm config serial-ports
vm config virtio-ports
vm config fifos
vm config append
vm config append console=ttyS0 "quiet splash"
vm config append
vm config qemu-append -nographic
vm config qemu-append
vm config init
vm config init /sbin/init single
vm config init
vm config hostname web
vm config hostname
vm config preinit /preinit.sh
vm config preinit
vm config filesystem /srv/rootfs
vm config filesystem
vm config kernel /boot/vmlinuz
vm config kernel
vm config initrd /boot/initrd.img
vm config initrd
vm config cdrom /isos/install.iso
vm config cdrom
vm config migrate /states/vm.state
vm config migrate
vm config qemu /usr/bin/qemu-system-x86_64
vm config qemu
vm config disk /a.qcow2 /b.qcow2
vm config disk
vm config disk /c.qcow2
vm config disk
