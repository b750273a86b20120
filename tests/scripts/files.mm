shell mkdir $files/fdir
shell mkdir $files/fdir/sub
shell touch $files/fdir/empty
shell truncate -s 1234 $files/fdir/sized.bin
.columns dir,name file list fdir
.columns name,size .filter dir= file list fdir
.columns name .filter dir= file list /fdir
file list fdir/nosuch
file get fdir/sized.bin
file get fdir/nosuch
file get fdir/*.bin
file status
file delete fdir/empty
.columns name .filter dir= file list fdir
file delete fdir/*.bin
.columns dir,name file list fdir
file delete fdir
file list fdir
