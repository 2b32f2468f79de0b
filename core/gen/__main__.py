from gen.commands import main

main()
