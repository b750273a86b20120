echo
echo a b  c
echo "  spaced  "
echo one # two
echo 1 2 3 4 5 6 7 8 9 10
.annotate true echo annotated
