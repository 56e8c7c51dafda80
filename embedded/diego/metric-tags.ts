// An instance's metric tags: the desired LRP's tags with the dynamic ones (index, instance guid)
// filled in, as the rep does before tagging the instance's logs and container metrics.
import { MetricTagValue_DynamicValue } from '../../gen/diego/bbs/v1/container.js';
import type { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';

export function resolveMetricTags(desired: DesiredLRP, index: number, instanceGuid: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [name, value] of Object.entries(desired.metricTags)) {
    if (value.static !== '') tags[name] = value.static;
    else if (value.dynamic === MetricTagValue_DynamicValue.DYNAMIC_VALUE_INDEX) tags[name] = String(index);
    else if (value.dynamic === MetricTagValue_DynamicValue.DYNAMIC_VALUE_INSTANCE_GUID) tags[name] = instanceGuid;
  }
  return tags;
}
