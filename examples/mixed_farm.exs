# Submits a map to a philipjose farm's service (started by examples/mixed_farm.py):
#     elixir --sname me@localhost --cookie COOKIE -r examples/philipjose_farm.ex \
#         examples/mixed_farm.exs FARMER_NODE
[farm] = Enum.map(System.argv(), &String.to_atom/1)

squares =
  1..100
  |> PhilipjoseFarm.map(:mixed, :square, [], farm: farm)
  |> Enum.map(fn {:ok, square} -> square end)

ref = PhilipjoseFarm.submit(:mixed, :square, [12], farm: farm)
{:ok, 144} = PhilipjoseFarm.await(ref)
{:error, {:undef, _}} = GenServer.call({:philipjose_farm, farm}, {:map, :os, :cmd, [[~c"ls"]]})
IO.puts("elixir: sum of the farm's squares of 1..100 = #{Enum.sum(squares)}")
