"""Operations app: on-demand jobs' records (exports, corrections, consolidated files) and commands."""
