defmodule PhilipjoseFarm do
  @moduledoc """
  Calls a philipjose farm from Elixir: the `philipjose_farm` server that `Farm(service=True)`
  registers on the farmer's node (see "Calling the farm from Erlang and Elixir" in docs/farm.md).

  The functions run on the farm's Python workers; they must be exposed on the farmer with
  `rpc.expose(module, ...)`. Which farm: the `:farm` option (the farmer's node name, or a
  `{name, node}` server), else `Application.get_env(:philipjose_farm, :farm)`.

      Application.put_env(:philipjose_farm, :farm, :"farmer@localhost")

      PhilipjoseFarm.map(1..1000, :pyexample, :square, [])
      |> Enum.map(fn {:ok, square} -> square end)

  Use it from a node started with the farm's cookie (`elixir --sname me --cookie ...`).
  """

  @name :philipjose_farm

  @doc """
  Like `Task.async_stream(enumerable, module, function, args, options)`: a stream of
  `{:ok, module.function(item, ...args)}` in input order, each call run on the farm.

  The items go to the farm `:batch_size` at a time (default 1000: one `{map, M, F, ArgsList}` call
  each) as the stream is consumed. A failed call exits the caller with `{reason, {PhilipjoseFarm,
  :map, [module, function]}}`, as a crashed task of `Task.async_stream` does, where `reason` is
  the farm's error reason (`{:python_exception, type, message, traceback}`, `{:undef, stack}`,
  `:timeout`, ...). Options: `:farm`, `:batch_size`, `:timeout` (per batch, default `:infinity`).
  """
  def map(enumerable, module, function, args \\ [], options \\ []) do
    server = server(options)
    timeout = Keyword.get(options, :timeout, :infinity)

    enumerable
    |> Stream.chunk_every(Keyword.get(options, :batch_size, 1000))
    |> Stream.flat_map(fn items ->
      calls = Enum.map(items, &[&1 | args])

      case GenServer.call(server, {:map, module, function, calls}, timeout) do
        {:ok, results} -> Enum.map(results, &{:ok, &1})
        {:error, reason} -> exit({reason, {__MODULE__, :map, [module, function]}})
      end
    end)
  end

  @doc """
  Submits `module.function(args...)`; returns a reference at once, or `{:error, reason}` when the
  farm refuses it (`{:undef, stack}`: not exposed). The outcome comes as a message
  `{:philipjose_farm, ref, {:ok, value} | {:error, reason}}`; see `await/2`.
  """
  def submit(module, function, args, options \\ []) do
    GenServer.call(server(options), {:submit, module, function, args})
  end

  @doc "Waits for the outcome of a `submit/4`: `{:ok, value}` or `{:error, reason}`."
  def await(ref, timeout \\ :infinity) do
    receive do
      {@name, ^ref, outcome} -> outcome
    after
      timeout -> exit({:timeout, {__MODULE__, :await, [ref, timeout]}})
    end
  end

  @doc """
  Runs the `{module, function, args}` calls at once; the first to succeed wins (`{:ok, value}`)
  and the others are stopped; `{:error, reason}` of the last if all fail.
  """
  def race(mfas, options \\ []) do
    GenServer.call(server(options), {:race, mfas}, Keyword.get(options, :timeout, :infinity))
  end

  @doc "The farm's counters: `{:ok, %{submitted: n, completed: n, ..., workers: %{python: n, erlang: n}}}`."
  def stats(options \\ []), do: GenServer.call(server(options), :stats)

  defp server(options) do
    case Keyword.get_lazy(options, :farm, fn -> Application.get_env(:philipjose_farm, :farm) end) do
      nil -> raise ArgumentError, "give the farm: farm: :\"farmer@host\" (or the :philipjose_farm, :farm env)"
      {name, node} -> {name, node}
      node when is_atom(node) -> {@name, node}
    end
  end
end
