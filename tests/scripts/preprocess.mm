shell mkdir -p $files/pre
shell touch $files/pre/here.txt
echo file:pre/here.txt
echo file:/pre/here.txt
echo file:pre/missing.txt
vm config cdrom file:pre/here.txt
vm config cdrom
.preprocess false echo file:pre/here.txt
.preprocess
.preprocess false
.preprocess
echo $files
.preprocess true
echo ${files}
file delete pre
