from rerankq.cli import main

main()
