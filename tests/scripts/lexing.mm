# Quotes group words and are removed
echo "hello   world"
echo 'single quoted' "double quoted"
echo a"b c"d
echo "it's" 'say "hi"'
echo "" x
# Escapes work inside and outside quotes
echo a\"b
echo "tab:\there"
echo \#not-a-comment
echo back\\slash
echo \'quoted\'
# Comments end the line outside quotes
echo visible # hidden
echo "# inside quotes"
echo no#space
   # an indented comment
# Errors
echo "unterminated
echo 'unterminated
echo bad\qescape
echo "bad \z inside"
