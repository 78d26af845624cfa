// Package steps registers the gha-dispatch-workflow and gha-wait-for-workflow
// promotion steps in Kargo's default step runner registry. Compile them into
// a Kargo controller with a blank import in its main package:
//
//	import _ "github.com/kargo-gha/kargo-gha/kargo/steps"
//
// The steps themselves live in github.com/kargo-gha/kargo-gha/pkg/steprun;
// this package only converts between Kargo's types and those.
package steps

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kargoapi "github.com/akuity/kargo/api/v1alpha1"
	kargocreds "github.com/akuity/kargo/pkg/credentials"
	"github.com/akuity/kargo/pkg/promotion"

	"github.com/kargo-gha/kargo-gha/pkg/config"
	"github.com/kargo-gha/kargo-gha/pkg/credentials"
	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/steprun"
)

const (
	// dispatchErrorThreshold: a transient dispatch error means nothing was
	// dispatched (the core makes every ambiguous failure final), so a few
	// retries are safe and ride out a GitHub hiccup.
	dispatchErrorThreshold = 3
	// waitErrorThreshold: waiting only reads; allow more consecutive
	// failures before giving up on a run that is still going.
	waitErrorThreshold = 5
)

// runner is shared by every execution: Kargo calls a step's factory each
// time, but the GitHub App token cache, the HTTP connections and the run
// correlation must outlive them.
var runner = steprun.NewRunner()

func init() {
	caps := []promotion.StepRunnerCapability{
		promotion.StepCapabilityAccessCredentials,
		// Only for the v1.8 format's credentials.secretName.
		promotion.StepCapabilityAccessControlPlane,
	}
	promotion.DefaultStepRunnerRegistry.MustRegister(promotion.StepRunnerRegistration{
		Name: config.DispatchStepName,
		Value: func(c promotion.StepRunnerCapabilities) promotion.StepRunner {
			return &step{caps: c, run: runner.Dispatch}
		},
		Metadata: promotion.StepRunnerMetadata{DefaultErrorThreshold: dispatchErrorThreshold, RequiredCapabilities: caps},
	})
	promotion.DefaultStepRunnerRegistry.MustRegister(promotion.StepRunnerRegistration{
		Name: config.WaitStepName,
		Value: func(c promotion.StepRunnerCapabilities) promotion.StepRunner {
			return &step{caps: c, run: runner.Wait}
		},
		// No default timeout: a run may wait days for an environment's
		// approval; users bound it with the step's retry.timeout.
		Metadata: promotion.StepRunnerMetadata{DefaultErrorThreshold: waitErrorThreshold, RequiredCapabilities: caps},
	})
}

// step adapts one steprun function to Kargo's StepRunner.
type step struct {
	caps promotion.StepRunnerCapabilities
	run  func(context.Context, *steprun.Context) (steprun.Result, error)
}

// Run implements promotion.StepRunner.
func (s *step) Run(ctx context.Context, sc *promotion.StepContext) (promotion.StepResult, error) {
	res, err := s.run(ctx, &steprun.Context{
		Project:     sc.Project,
		Alias:       sc.Alias,
		Config:      map[string]any(sc.Config),
		SharedState: map[string]any(sc.SharedState),
		Credentials: s.credentials(sc.Project),
		Secret:      s.secret(sc.Project),
	})
	out := promotion.StepResult{
		Status:     kargoapi.PromotionStepStatus(res.Status),
		Message:    res.Message,
		Output:     res.Output,
		RetryAfter: res.RetryAfter,
	}
	if err != nil && failure.IsFinal(err) {
		return out, &promotion.TerminalError{Err: err}
	}
	return out, err
}

// credentials reads Kargo's credentials database. For a GitHub App, Kargo
// has already minted an installation token, which arrives as the password.
func (s *step) credentials(project string) func(context.Context, string) (*credentials.Credentials, error) {
	if s.caps.CredsDB == nil {
		return nil
	}
	return func(ctx context.Context, repoURL string) (*credentials.Credentials, error) {
		c, err := s.caps.CredsDB.Get(ctx, project, kargocreds.TypeGit, repoURL)
		if err != nil || c == nil || c.Password == "" {
			return nil, err
		}
		return &credentials.Credentials{Token: c.Password, Source: "Kargo Git credentials for " + repoURL}, nil
	}
}

// secret reads a Secret of the project namespace (v1.8 format).
func (s *step) secret(project string) func(context.Context, string) (map[string]string, error) {
	if s.caps.KargoClient == nil {
		return nil
	}
	return func(ctx context.Context, name string) (map[string]string, error) {
		var sec corev1.Secret
		err := s.caps.KargoClient.Get(ctx, client.ObjectKey{Namespace: project, Name: name}, &sec)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("getting Secret: %w", err)
		}
		data := make(map[string]string, len(sec.Data)+len(sec.StringData))
		for k, v := range sec.Data {
			data[k] = string(v)
		}
		for k, v := range sec.StringData {
			data[k] = v
		}
		return data, nil
	}
}
