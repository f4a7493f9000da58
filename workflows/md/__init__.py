"""Field MD as a restartable process (MDWorkChain) and the grids of runs that exploration and campaigns launch."""
