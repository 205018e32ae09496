from rvforge.cli import main

main()
