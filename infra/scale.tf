# Scale tiers (README "Scale tiers"). One variable, scale_tier, picks what Cosmos DB
# and Service Bus provide; from that follows the most delivered messages per second
# the stores sustain (the ceiling), and from the ceiling how many instances and
# concurrent Service Bus calls the functions may have, so that they never drive
# the stores into sustained throttling. tests/infra recomputes the ceiling from
# the resources themselves, for both tiers, and fails when the two disagree.

locals {
  serverless = var.scale_tier == "serverless"

  # What one delivered message costs, as `python -m bench.cost` counts it
  # (docs/cost.md, "Operations per delivered message" and "Analytics"; single
  # sends, a tenant without webhooks, analytics on). Update these when the counts
  # there change.
  cost_per_message = {
    # Request units: ESTIMATES. bench.cost has not been run against a real account
    # (the local Cosmos server charges 1 RU for everything); docs/cost.md prices
    # each counted operation with Learn's charge for its size (bench/pricing.py):
    # ~41.6 RU in all, rounded up here.
    cosmos_request_units_total = 41.8
    # ...of which, by the same arithmetic, on messages the create, 3 replaces and
    # 2 point reads of the 1.5 KB document (~24.5), on counters the rate-limit
    # writes (0.2 per message, ~0.9), on rollups analytics' 3 markers and its
    # share of a bucket's read and replace (~15.1). The rest (~1.0, the channel's
    # point read) falls on the other containers.
    cosmos_request_units = {
      messages = 24.6
      counters = 1.0
      rollups  = 15.2
    }
    # Billed Service Bus operations: 2 sends (the job, the receipt), 2 receives,
    # 2 completes, and analytics' share of a gathered analytics.facts message
    # (one per ~200 facts: 0.015 each of send, receive and complete).
    service_bus_operations = 6.05
    # Sends to the events topic, each evaluated against every subscription's
    # filter rule: analytics' share of one (0.015) for a delivered message of a
    # tenant without webhooks. A tenant with webhooks adds one per event its
    # webhooks take.
    topic_sends = 0.015
  }

  # Published limits.
  # Learn "Azure Cosmos DB serverless account performance": a serverless container
  # serves up to 5,000 RU/s (more once it spans more than 50 GB / partitions, with
  # no guarantee), and a serverless account takes no provisioned throughput at all.
  cosmos_serverless_container_request_units = 5000
  # Learn "Throttling operations on Azure Service Bus": a Standard namespace gets
  # 1,000 credits per second; a data operation (send, receive, peek, complete)
  # costs 1 credit per message, and so does each filter evaluation of a message
  # sent to a topic.
  service_bus_standard_credits_per_second = 1000
  # NOT published: Learn ("Service Bus premium and standard messaging tiers",
  # "Throttling operations on Azure Service Bus") gives no operations per second
  # for a messaging unit, only dedicated CPU and memory per unit, and the advice to
  # add units when the namespace's CPU stays above 70% (remove them below 20%).
  # 2,000 operations/s per unit is this configuration's planning figure: twice a
  # whole Standard namespace's credit budget, below the few thousand small
  # messages per second per unit often quoted. Raise it once a load test shows the
  # namespace's CPU metric below 70% at that rate.
  service_bus_premium_operations_per_second_per_unit = 2000

  # Broker operations per delivered message: the billed ones plus the filter
  # evaluations of each topic send (one per subscription of the events topic).
  service_bus_operations_per_message = (
    local.cost_per_message.service_bus_operations
    + local.cost_per_message.topic_sends * length(local.service_bus_subscriptions)
  )
  service_bus_operations_per_second = (
    var.scale_tier == "serverless"
    ? local.service_bus_standard_credits_per_second
    : var.servicebus_messaging_units * local.service_bus_premium_operations_per_second_per_unit
  )

  # The RU/s each costed container may use. Serverless: its own 5,000. Provisioned:
  # its autoscale maximum when hot; when not, its share of the database budget
  # (its request units then count in the shared part below, 0 here).
  # (The tier is tested on var.scale_tier in each condition, and there are no for
  # expressions: checkov evaluates neither booleans held in locals nor for
  # expressions, and one input it cannot evaluate leaves the whole function_app
  # module unchecked.)
  cosmos_messages_request_units_per_second = (
    var.scale_tier == "serverless" ? local.cosmos_serverless_container_request_units
    : lookup(var.cosmos_autoscale_max_throughput, "messages", 0)
  )
  cosmos_counters_request_units_per_second = (
    var.scale_tier == "serverless" ? local.cosmos_serverless_container_request_units
    : lookup(var.cosmos_autoscale_max_throughput, "counters", 0)
  )
  cosmos_rollups_request_units_per_second = (
    var.scale_tier == "serverless" ? local.cosmos_serverless_container_request_units
    : lookup(var.cosmos_autoscale_max_throughput, "rollups", 0)
  )
  # What the rest shares: the database's budget (serverless: as if it all fell on
  # one container), per delivered message the request units not on a hot one.
  cosmos_shared_request_units_per_second = (
    var.scale_tier == "serverless" ? local.cosmos_serverless_container_request_units
    : var.cosmos_database_autoscale_max_throughput
  )
  cosmos_shared_request_units_per_message = local.cost_per_message.cosmos_request_units_total - sum([
    local.cosmos_messages_request_units_per_second > 0 ? local.cost_per_message.cosmos_request_units.messages : 0,
    local.cosmos_counters_request_units_per_second > 0 ? local.cost_per_message.cosmos_request_units.counters : 0,
    local.cosmos_rollups_request_units_per_second > 0 ? local.cost_per_message.cosmos_request_units.rollups : 0,
  ])

  # Delivered messages per second each store sustains; the least of them is the
  # ceiling. A costed container without throughput of its own is bounded by the
  # shared budget, which its request units are counted in.
  service_bus_ceiling = local.service_bus_operations_per_second / local.service_bus_operations_per_message
  # (Nothing on the shared containers: they bound nothing, the Service Bus does.)
  cosmos_shared_ceiling = (
    local.cosmos_shared_request_units_per_message > 0
    ? local.cosmos_shared_request_units_per_second / local.cosmos_shared_request_units_per_message
    : local.service_bus_ceiling
  )
  store_ceilings = {
    "cosmos messages" = (
      local.cosmos_messages_request_units_per_second > 0
      ? local.cosmos_messages_request_units_per_second / local.cost_per_message.cosmos_request_units.messages
      : local.cosmos_shared_ceiling
    )
    "cosmos counters" = (
      local.cosmos_counters_request_units_per_second > 0
      ? local.cosmos_counters_request_units_per_second / local.cost_per_message.cosmos_request_units.counters
      : local.cosmos_shared_ceiling
    )
    "cosmos rollups" = (
      local.cosmos_rollups_request_units_per_second > 0
      ? local.cosmos_rollups_request_units_per_second / local.cost_per_message.cosmos_request_units.rollups
      : local.cosmos_shared_ceiling
    )
    "cosmos (shared)" = local.cosmos_shared_ceiling
    "service bus"     = local.service_bus_ceiling
  }
  ceiling_messages_per_second = min(
    local.store_ceilings["cosmos messages"],
    local.store_ceilings["cosmos counters"],
    local.store_ceilings["cosmos rollups"],
    local.store_ceilings["cosmos (shared)"],
    local.store_ceilings["service bus"],
  )

  # A dispatch holds its Service Bus slot for about one provider call.
  dispatch_seconds = 0.5
  # Concurrent dispatches the ceiling allows: instances x maxConcurrentCalls may
  # come close to this, never above it.
  dispatch_concurrency = max(1, floor(local.ceiling_messages_per_second * local.dispatch_seconds))
  # host.json's maxConcurrentCalls (16) is the most one instance takes at once.
  max_concurrent_calls_per_instance = 16
  # Flex Consumption scales each Service Bus and timer function on instances of
  # its own (per-function scaling); the app has 13 functions (the HTTP API, 10
  # Service Bus triggers, 2 timers), so the cap leaves each room for an instance
  # before it raises the calls per instance.
  function_instance_floor = 16

  derived_max_concurrent_calls = min(
    local.max_concurrent_calls_per_instance,
    max(1, floor(local.dispatch_concurrency / local.function_instance_floor)),
  )
  derived_instance_count = min(1000, max(1, floor(local.dispatch_concurrency / local.derived_max_concurrent_calls)))

  function_instance_count = (
    var.function_maximum_instance_count == null ? local.derived_instance_count : var.function_maximum_instance_count
  )
  # With the derived instance count, dispatch_concurrency / instances rounds back
  # down to the derived calls; with one set by hand, the calls follow from it.
  service_bus_max_concurrent_calls = (
    var.function_maximum_instance_count == null ? local.derived_max_concurrent_calls : min(
      local.max_concurrent_calls_per_instance,
      max(1, floor(local.dispatch_concurrency / var.function_maximum_instance_count)),
    )
  )

  # App settings override host.json (Learn "host.json reference for Azure
  # Functions 2.x and later", "Override host.json values": AzureFunctionsJobHost__
  # and the path, with __ between levels).
  host_settings = {
    AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls = local.service_bus_max_concurrent_calls
  }
}

# Only a hand-set function_maximum_instance_count can exceed the budget (with one
# call per instance): plan warns then.
check "functions_stay_within_the_stores_ceiling" {
  assert {
    condition     = local.function_instance_count * local.service_bus_max_concurrent_calls <= local.dispatch_concurrency
    error_message = "function_maximum_instance_count x maxConcurrentCalls exceeds the concurrent dispatches the stores sustain (output scale): expect throttling."
  }
}
