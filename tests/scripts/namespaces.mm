namespace
namespace foo
namespace foo
vlans add a 10
namespace minimega
vlans
namespace foo vlans
namespace bar echo in bar
namespace foo vm config memory 64
namespace foo vm config memory
vm config memory
clear namespace foo
namespace foo vlans
namespace foo vm config memory
clear namespace nosuch
namespace bar
clear namespace
vm config memory
