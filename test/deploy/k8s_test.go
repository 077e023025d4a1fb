package deploy

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// k8sPodSpecs returns the pod specs of the workload kinds of k8s/.
func k8sPodSpecs(obj any) []corev1.PodSpec {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return []corev1.PodSpec{o.Spec.Template.Spec}
	case *appsv1.StatefulSet:
		return []corev1.PodSpec{o.Spec.Template.Spec}
	}
	return nil
}
