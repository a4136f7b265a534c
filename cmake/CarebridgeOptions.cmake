# Warnings, sanitizers and fuzzing flags shared by every carebridge target.
# Targets opt in with carebridge_target_defaults(target).

add_library(carebridge_defaults INTERFACE)
# (-Wnull-dereference is left out: at -O2 g++ 12 reports it inside inlined Boost.Asio code.)
target_compile_options(carebridge_defaults INTERFACE
  -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wunused -Woverloaded-virtual -Wconversion -Wsign-conversion
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(carebridge_defaults INTERFACE -Wmisleading-indentation -Wduplicated-cond
    -Wduplicated-branches -Wlogical-op)
endif()
if(CAREBRIDGE_WERROR)
  target_compile_options(carebridge_defaults INTERFACE -Werror)
endif()
target_compile_definitions(carebridge_defaults INTERFACE _FORTIFY_SOURCE=2 _GLIBCXX_ASSERTIONS)
target_include_directories(carebridge_defaults INTERFACE
  ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)

if(CAREBRIDGE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(CAREBRIDGE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CAREBRIDGE_FUZZ needs clang (use the 'fuzz' preset)")
  endif()
  # Everything is instrumented for coverage; only fuzz executables link the fuzzer main.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

function(carebridge_target_defaults target)
  target_link_libraries(${target} PRIVATE carebridge_defaults)
endfunction()
