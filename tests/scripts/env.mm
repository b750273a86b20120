.env greeting hello
.env greeting
echo $greeting ${greeting}world
.filter key=greeting .env
.env greeting "two words"
echo [$greeting]
.env greeting ""
.env greeting
echo [$greeting]
.filter key=greeting .env
echo $nosuchvariable-x
.preprocess false echo $greeting
.env files
