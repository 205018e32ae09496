"""RISC-V knowledge: the ELF reader, ISA strings and their implications, and the
instruction sweep. They know bytes and ISA strings, not plugins."""
