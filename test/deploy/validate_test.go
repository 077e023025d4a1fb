package deploy

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	eventingconfig "knative.dev/eventing/pkg/apis/config"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/apis/feature"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// knativeObject is what the Knative admission webhooks call on an object.
type knativeObject interface {
	apis.Defaultable
	apis.Validatable
}

// newObject returns an empty Go value of the API type of a manifest, or an
// error for a kind the tests do not know (add it here deliberately).
func newObject(m manifest) (any, error) {
	switch m.APIVersion + "/" + m.Kind {
	case "serving.knative.dev/v1/Service":
		return &servingv1.Service{}, nil
	case "eventing.knative.dev/v1/Broker":
		return &eventingv1.Broker{}, nil
	case "eventing.knative.dev/v1/Trigger":
		return &eventingv1.Trigger{}, nil
	case "sources.knative.dev/v1/PingSource":
		return &sourcesv1.PingSource{}, nil
	case "sources.knative.dev/v1/SinkBinding":
		return &sourcesv1.SinkBinding{}, nil
	case "v1/Namespace":
		return &corev1.Namespace{}, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1/Pod":
		return &corev1.Pod{}, nil
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "batch/v1/Job":
		return &batchv1.Job{}, nil
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "monitoring.coreos.com/v1/PodMonitor":
		return &podMonitor{}, nil // monitoring_test.go
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &serviceMonitor{}, nil
	case "monitoring.coreos.com/v1/PrometheusRule":
		return &prometheusRule{}, nil
	}
	return nil, fmt.Errorf("%s: kind %s %s is not known to test/deploy; add it to newObject", m.Source, m.APIVersion, m.Kind)
}

// knativeContext is the context the Knative webhooks validate a new object
// in: create, eventing's default feature flags and a default broker class.
// Serving and the sources fall back to their built-in defaults.
func knativeContext() context.Context {
	ctx := apis.WithinCreate(context.Background())
	ctx = feature.ToContext(ctx, feature.FromContextOrDefaults(ctx))
	defaults, err := eventingconfig.NewDefaultsConfigFromMap(map[string]string{
		eventingconfig.BrokerDefaultsKey: `
clusterDefault:
  brokerClass: MTChannelBasedBroker
  apiVersion: v1
  kind: ConfigMap
  name: config-br-default-channel
  namespace: knative-eventing
`,
	})
	if err != nil {
		panic(err)
	}
	return eventingconfig.ToContext(ctx, &eventingconfig.Config{Defaults: defaults})
}

// decode decodes a manifest strictly into its Go type. For Knative
// objects it then runs SetDefaults and Validate as the admission webhook
// would; errors at apis.ErrorLevel fail, warnings (such as serving's
// advice on pod security defaults) do not, as with the webhook.
// ko:// image references are resolved first, as `ko resolve` does.
func decode(ctx context.Context, m manifest) (any, error) {
	obj, err := newObject(m)
	if err != nil {
		return nil, err
	}
	if err := strictYAML(resolveKo(m.YAML), obj); err != nil {
		return nil, fmt.Errorf("%s: decode: %w", m, err)
	}
	ko, ok := obj.(knativeObject)
	if !ok {
		return obj, nil
	}
	ko.SetDefaults(ctx)
	if fe := ko.Validate(ctx).Filter(apis.ErrorLevel); fe != nil {
		return obj, &validationError{m: m, fe: fe}
	}
	return obj, nil
}

// validationError is Knative's rejection of an object.
type validationError struct {
	m  manifest
	fe *apis.FieldError
}

func (e *validationError) Error() string {
	return fmt.Sprintf("%s: rejected by Knative validation: %v", e.m, e.fe)
}

func isValidationError(err error) bool {
	var ve *validationError
	return errors.As(err, &ve)
}

// decodeAll decodes every manifest, returning the objects in order and
// every error.
func decodeAll(ms []manifest) ([]any, []error) {
	ctx := knativeContext()
	objs := make([]any, len(ms))
	var errs []error
	for i, m := range ms {
		obj, err := decode(ctx, m)
		if err != nil {
			errs = append(errs, err)
		}
		objs[i] = obj
	}
	return objs, errs
}
