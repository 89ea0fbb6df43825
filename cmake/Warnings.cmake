# Warnings are errors everywhere in the project's own C code.
add_compile_options(
  "$<$<COMPILE_LANGUAGE:C>:-Wall;-Wextra;-Wpedantic;-Werror;-Wshadow;-Wstrict-prototypes;-Wmissing-prototypes;-Wvla>"
)
