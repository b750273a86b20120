vm launch kvm foo
vnc record kb foo $files/foo.kb
vnc record kb foo $files/again.kb
vnc record kb bar $files/bar.kb
.columns name,type,filename vnc
namespace other vm launch kvm foo
namespace other vnc record kb foo $files/other.kb
namespace other .columns name,type,filename vnc
vnc stop kb foo
vnc stop kb foo
vnc
namespace other .columns name,type,filename vnc
namespace other clear vnc
namespace other vnc
vnc inject foo PointerEvent,1,2
vnc pause foo
clear namespace other
