# 2.4 answers an error batch (then an empty one) when already in minimega
clear namespace
