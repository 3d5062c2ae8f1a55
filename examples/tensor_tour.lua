-- A short walk through mmfuse's tensors (runs with: lua5.4 examples/tensor_tour.lua
-- from the checkout after `make`).
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local mm = require "mmfuse"

print("mmfuse " .. mm.version)
local t = mm.tensor{ { 1, 2 }, { 3, 4 } }
print(t)
print("t:matmul(t) =")
print(t:matmul(t))
print("t + row vector {10, 20} =")
print(t + mm.tensor{ 10, 20 })
mm.seed(1)
local x = mm.randn(2, 3)
print("randn(2, 3) with seed 1:")
print(x)
print("sum over dim 2:", x:sum(2))
