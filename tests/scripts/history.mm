history
echo one
echo two
history
.record false echo hidden
.record false
echo also hidden
.record
.record true
# comments are not recorded
echo three
history
clear history
history
echo four
vm config memory 1024
namespace foo echo inner
history
