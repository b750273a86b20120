namespace foo
namespace
vlans range 200 210
namespace minimega
namespace
