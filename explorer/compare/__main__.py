from explorer.compare.command import main

main()
