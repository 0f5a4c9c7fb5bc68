from gpuobs.cli import main

main()
